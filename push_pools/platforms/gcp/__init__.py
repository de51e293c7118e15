"""Google Cloud: Cloud Run jobs (one execution per flow run) and the Cloud Functions entry points."""
