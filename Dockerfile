# The hub image: Airflow 3.3 with sharehub installed, so DAG tasks import the same package
# the CLI uses. Build context is the repository root.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml README.md /opt/sharehub/src/
COPY --chown=airflow:root sharehub /opt/sharehub/src/sharehub
COPY --chown=airflow:root linkage /opt/sharehub/src/linkage
COPY --chown=airflow:root schemas /opt/sharehub/src/schemas
COPY --chown=airflow:root contracts /opt/sharehub/src/contracts
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/sharehub/src
