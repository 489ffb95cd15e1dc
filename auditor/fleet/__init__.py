"""Fleet mode: the nightly run spread over Celery workers on a Redis broker, results in the shared history."""
