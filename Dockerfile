# BASE_IMAGE: any Debian-like image with Python 3.11, venv and pip (CI builds a local bookworm one).
# Dependencies come only from the hashed runtime lock (the full lock's pins, without test tools).
# For an offline build, put the locked archives in build/wheelhouse and pass --build-arg PIP_NO_INDEX=1:
#   pip download --require-hashes --no-deps -r requirements-runtime.lock -d build/wheelhouse
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# Marks the (untagged) build stage so a CI run can remove exactly the images it made.
ARG BUILD_ID=local
LABEL dbmon.build=${BUILD_ID}
ARG PIP_NO_INDEX=
ENV PIP_FIND_LINKS=/wheels PIP_DISABLE_PIP_VERSION_CHECK=1
# The wildcard lets the build go on without a wheelhouse.
COPY requirements-runtime.lock build/wheelhous[e] /wheels/
RUN python3 -m venv /opt/dbmon \
    && /opt/dbmon/bin/pip install --no-cache-dir --require-hashes -r /wheels/requirements-runtime.lock
WORKDIR /src
COPY pyproject.toml README.md beat_schedule.py ./
COPY monitor_app ./monitor_app
COPY workers ./workers
COPY api ./api
COPY templates ./templates
# A regular install (not editable): the image holds only what the wheel ships.
RUN /opt/dbmon/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DBMON_DATA_DIR=/var/lib/dbmon PATH=/opt/dbmon/bin:$PATH
COPY --from=build /opt/dbmon /opt/dbmon
RUN useradd --system --home /var/lib/dbmon dbmon && mkdir -p /var/lib/dbmon && chown dbmon /var/lib/dbmon
WORKDIR /var/lib/dbmon
USER dbmon
ENTRYPOINT ["dbmon"]
CMD ["up"]
