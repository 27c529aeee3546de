"""The jobs layer: a Django Tasks backend (jobs.backend) over our queue, with retries with
backoff, an attempts log, dead letters and their console.

    from django_tasks import task

    @task(max_attempts=5)
    def send_welcome(user_id: int) -> None: ...

    send_welcome.enqueue(user_id=1)
"""
