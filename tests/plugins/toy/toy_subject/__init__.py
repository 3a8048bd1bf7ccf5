"""A toy subject: a lamp that is lit or dark. The smallest complete Operator Lab subject."""
