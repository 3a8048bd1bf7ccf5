# One image for every Operator Lab process; the compose file picks the command.
FROM python:3.11-slim AS install

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events events
COPY tickets tickets
COPY projections projections
COPY subjects subjects
COPY services services
COPY console console
COPY oplab oplab
COPY deploy deploy
RUN pip install .

# The TiKV double (tests/fakes/tikv) on top, standing in for pingcap/pd and pingcap/tikv where those
# images cannot be had: tests/fakes/tikv/docker-compose.double.yml builds this target. Not the lab's.
FROM install AS tikv-double
COPY tests/__init__.py tests/__init__.py
COPY tests/fakes/__init__.py tests/fakes/__init__.py
COPY tests/fakes/tikv tests/fakes/tikv

# The lab (the last stage: what `docker build .` and the compose file's `build: .` make).
FROM install AS lab
# /auth: the NATS users nats-auth writes (a named volume takes the ownership of the image's directory)
RUN useradd --create-home lab && mkdir -p /data /auth && chown lab /data /auth && chmod 700 /auth
USER lab
ENV OPLAB_HOME=/data
CMD ["oplab", "--help"]
