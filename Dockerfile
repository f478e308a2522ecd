# tickwire: one image for the world server and the agents.
#   docker build -t tickwire .                         (users: from python:3.12-slim)
#   docker build --build-arg PYTHON_IMAGE=tickwire-base:py3 \
#                --build-arg PIP_ARGS="--no-index --find-links /wheels" .   (no index here)
ARG PYTHON_IMAGE=python:3.12-slim

# --- build stage: everything is installed into a virtualenv at /venv -------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# Extra pip flags. Empty for users (the package index is used); without an index, pass a
# local wheelhouse (docker/wheels: wheels for the base image's Python, see the README's
# "Without a registry"). Never in the final image.
ARG PIP_ARGS=""
RUN python -m venv --without-pip /venv
COPY docker/wheels/ /wheels/
WORKDIR /src
# Dependency layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
# The dependencies and the metrics extra (prometheus-client, for --metrics).
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['metrics']))" > requirements.txt \
 && python -m pip --python /venv/bin/python install $PIP_ARGS -r requirements.txt
# Source layer.
COPY README.md ./
COPY tickwire ./tickwire
COPY protocol ./protocol
COPY plumbing ./plumbing
COPY server ./server
COPY agents ./agents
COPY bench ./bench
RUN python -m pip --python /venv/bin/python install $PIP_ARGS --no-deps .

# --- final image: the base, the virtualenv, a non-root user ----------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH
# /keys: CURVE key volumes; /data: where the compose file mounts a volume for --summary.
RUN useradd --create-home --uid 10001 tickwire \
 && mkdir -p /keys/server /keys/agent && chown -R tickwire /keys && chmod 700 /keys/server /keys/agent \
 && mkdir /data && chown tickwire:tickwire /data
COPY --from=build /venv /venv
USER tickwire
WORKDIR /home/tickwire
# Exec form: tickwire is PID 1 and handles SIGTERM itself (END, then a clean exit).
ENTRYPOINT ["tickwire"]
CMD ["server"]
