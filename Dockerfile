# syntax=docker/dockerfile:1
# Schoolgate container image.
#   docker build -t schoolgate .
#   docker run --rm -p 8000:8000 -v schoolgate-data:/app/var schoolgate

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a self-contained virtualenv in /opt/venv -----------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first (own layer, cached until the lock changes), every file
# checked against the hashes in the lock.
COPY requirements/main.lock requirements/main.lock
RUN pip install --require-hashes -r requirements/main.lock

# Then the app itself; its dependencies are already installed from the lock.
COPY pyproject.toml README.md ./
COPY bot/ bot/
COPY api/ api/
RUN pip install --no-deps . \
    && pip check

# ---- runtime ----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    CONFIG_DIR=/app/config \
    MIGRATIONS_DIR=/app/migrations

RUN groupadd --system --gid 10001 schoolgate \
    && useradd --system --uid 10001 --gid schoolgate \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin schoolgate

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY config/ /app/config/
COPY migrations/ /app/migrations/
# Data (database, uploads, ...) lives in /app/var, owned by the app user.
RUN mkdir -p /app/var && chown schoolgate:schoolgate /app/var
VOLUME ["/app/var"]

USER schoolgate

EXPOSE 8000
CMD ["schoolgate", "serve", "--host", "0.0.0.0"]
