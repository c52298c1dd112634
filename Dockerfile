FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DBMON_DATA_DIR=/var/lib/dbmon
WORKDIR /opt/dbmon
COPY pyproject.toml README.md beat_schedule.py ./
COPY monitor_app ./monitor_app
COPY workers ./workers
COPY api ./api
COPY templates ./templates
RUN pip install --no-cache-dir '.[alerts]' && useradd --system --home /var/lib/dbmon dbmon \
    && mkdir -p /var/lib/dbmon && chown dbmon /var/lib/dbmon
USER dbmon
ENTRYPOINT ["dbmon"]
CMD ["up"]
