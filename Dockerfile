# One image for every Operator Lab process; the compose file picks the command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events events
COPY projections projections
COPY subjects subjects
COPY services services
COPY console console
COPY oplab oplab
COPY deploy deploy
RUN pip install .
RUN useradd --create-home lab && mkdir -p /data && chown lab /data
USER lab
ENV OPLAB_HOME=/data
CMD ["oplab", "--help"]
