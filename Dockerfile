# syntax=docker/dockerfile:1
# stream-od: two images from one Dockerfile.
#
#   docker build -t stream-od:local .                                   # the worker (default)
#   docker build --target trainer -t stream-od-trainer:local .          # the trainer
#   docker run --rm stream-od:local --help
#
# The worker image is `pip install stream-od` alone: it scores every detector (the neural ones
# with their networks in numpy) without TensorFlow, pandas, scikit-learn or matplotlib. The
# trainer image adds them (`stream-od[train]`): train, evaluate, score, replay, publish.
# Each is built in a `build*` stage that installs the project and its locked dependencies into
# a virtual environment (/opt/venv) from wheels; the final stages copy only that environment
# onto a clean slim Python, run as an unprivileged user and have no compiler, pip cache or
# source tree.

ARG PYTHON_VERSION=3.11

# The trainer's environment. The dependencies first, exactly as locked (versions and sha256 of
# every wheel; `make lock` writes both lock files): a rebuild next year installs what was
# tested, not a new Keras or NumPy major that no longer loads a stored model. Then the project
# alone, with no resolution. Every dependency ships manylinux wheels, and this stage has no
# compiler either: a dependency that would need one fails here, loudly. pip byte-compiles on
# install, so the image starts without compiling TensorFlow's modules; pip itself is then
# dropped from the environment.
FROM python:${PYTHON_VERSION}-slim-bookworm AS build-trainer
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip
WORKDIR /src
COPY requirements/trainer.lock ./
RUN pip install --require-hashes --no-deps -r trainer.lock
COPY pyproject.toml README.md LICENSE ./
COPY stream_od ./stream_od
COPY trainer ./trainer
RUN pip install --no-deps . \
 && pip check \
 && pip uninstall -y pip \
 && stream-od --help >/dev/null

# The worker's environment: the same steps from the worker's own lock.
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip
WORKDIR /src
COPY requirements/worker.lock ./
RUN pip install --require-hashes --no-deps -r worker.lock
COPY pyproject.toml README.md LICENSE ./
COPY stream_od ./stream_od
COPY trainer ./trainer
RUN pip install --no-deps . \
 && pip check \
 && pip uninstall -y pip \
 && stream-od --help >/dev/null \
 && ! python -c "import tensorflow" 2>/dev/null

# The trainer image (`--target trainer`). /data: training data, mounted read-only. Keras' and
# matplotlib's caches go to /tmp, the one writable path when Kubernetes mounts the root file
# system read-only. /models is owned by the app user so a fresh named volume is writable.
FROM python:${PYTHON_VERSION}-slim-bookworm AS trainer
LABEL org.opencontainers.image.title="stream-od-trainer" \
      org.opencontainers.image.description="Trains and publishes stream-od models" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN pip uninstall -y pip setuptools wheel 2>/dev/null || true \
 && groupadd --system --gid 10001 stream-od \
 && useradd --system --uid 10001 --gid stream-od --home-dir /home/stream-od --create-home \
      --shell /usr/sbin/nologin stream-od \
 && mkdir -p /models /data \
 && chown stream-od:stream-od /models
COPY --from=build-trainer /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KERAS_BACKEND=tensorflow \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_HOME=/tmp/keras \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /home/stream-od
ENTRYPOINT ["stream-od"]
CMD ["--help"]

# The worker image, the default target. Models normally travel on the compacted models topic
# (STREAM_OD_MODEL_SOURCE=topic, set by docker-compose.yml and deploy/k8s), so the image needs
# no model volume; /models is only a mount point for those who serve an artifact directory
# (model_source=path) or a directory registry (model_source=directory).
FROM python:${PYTHON_VERSION}-slim-bookworm AS worker
LABEL org.opencontainers.image.title="stream-od" \
      org.opencontainers.image.description="Streaming anomaly detection for network traffic on Apache Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"
# The image's own pip is not needed at run time either.
RUN pip uninstall -y pip setuptools wheel 2>/dev/null || true \
 && groupadd --system --gid 10001 stream-od \
 && useradd --system --uid 10001 --gid stream-od --home-dir /home/stream-od --create-home \
      --shell /usr/sbin/nologin stream-od \
 && mkdir -p /models \
 && chown stream-od:stream-od /models
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAM_OD_METRICS_PORT=9108
USER 10001:10001
WORKDIR /home/stream-od
# Prometheus /metrics and the /healthz and /readyz probes.
EXPOSE 9108
# The worker finishes its batch in flight and commits on SIGTERM (exec form: the Python process
# is PID 1 and receives the signal itself).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STREAM_OD_METRICS_PORT', '9108'), timeout=2); sys.exit(0)"]
ENTRYPOINT ["stream-od"]
CMD ["worker"]
