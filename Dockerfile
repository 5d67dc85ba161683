# The hub image: Airflow 3.3 with sharehub installed, so DAG tasks import the same package
# the CLI uses, and the DAGs baked in beside it, so a deployed DAG and the code it calls
# are always the same version. Build context is the repository root (docker-compose.yml).
#
# Python 3.11: the tag's Python must satisfy pyproject.toml's requires-python.
FROM apache/airflow:3.3.2-python3.11

# Mount points for the compose volumes, owned by the airflow user: Docker copies this
# ownership into a new named volume, so the tasks can write the warehouse.
USER root
RUN mkdir -p /opt/sharehub/landing /opt/sharehub/warehouse \
    && chown -R airflow:root /opt/sharehub \
    && chmod -R g+rwX /opt/sharehub
USER airflow

COPY --chown=airflow:root pyproject.toml README.md /opt/sharehub/src/
COPY --chown=airflow:root sharehub /opt/sharehub/src/sharehub
COPY --chown=airflow:root linkage /opt/sharehub/src/linkage
COPY --chown=airflow:root schemas /opt/sharehub/src/schemas
COPY --chown=airflow:root contracts /opt/sharehub/src/contracts
# Pinning apache-airflow to the image's own version keeps pip from moving Airflow while
# it resolves sharehub's dependencies (as the Airflow image docs advise).
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/sharehub/src
COPY --chown=airflow:root dags /opt/airflow/dags
