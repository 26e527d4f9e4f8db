"""Concurrent requests to one model, predicted together: one worker thread per Predictor.

A request hands its (already checked) items to ``Batcher.submit`` and waits on the returned
future. The worker takes the oldest waiting request, then every request that arrives within
``max_wait`` seconds, up to ``max_items`` items, predicts them in one ``Predictor.predict``
call (length-sorted batches of ``batch_size``) and hands each request its own results. Only the
worker touches the predictor, whose tokenizer and runtime are not thread-safe.
"""
import concurrent.futures
import queue
import threading
import time


class Batcher:
    def __init__(self, predictor, max_items=256, max_wait=0.005, name="model"):
        self.predictor = predictor
        self.max_items = max_items
        self.max_wait = max_wait
        self.jobs = queue.Queue()
        self.stats = {"requests": 0, "items": 0, "batches": 0, "largest_batch_requests": 0}
        self._thread = threading.Thread(target=self._work, daemon=True, name=f"batcher-{name}")
        self._thread.start()

    def submit(self, items):
        """A concurrent.futures.Future of the predictions of ``items`` (a list), in order."""
        future = concurrent.futures.Future()
        self.jobs.put((items, future))
        return future

    def close(self):
        self.jobs.put(None)

    def _gather(self, first):
        jobs, count = [first], len(first[0])
        deadline = time.monotonic() + self.max_wait
        while count < self.max_items:
            try:
                job = self.jobs.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if job is None:
                self.jobs.put(None)  # seen again by the loop, after this batch
                break
            jobs.append(job)
            count += len(job[0])
        return jobs

    def _work(self):
        while True:
            first = self.jobs.get()
            if first is None:
                return
            jobs = [job for job in self._gather(first) if job[1].set_running_or_notify_cancel()]
            items = [item for job_items, _ in jobs for item in job_items]
            try:
                results = self.predictor.predict(items) if items else []
            except BaseException as e:  # every waiting request hears it
                for _, future in jobs:
                    future.set_exception(e)
                continue
            start = 0
            for job_items, future in jobs:
                future.set_result(results[start:start + len(job_items)])
                start += len(job_items)
            self.stats["requests"] += len(jobs)
            self.stats["items"] += len(items)
            self.stats["batches"] += 1
            self.stats["largest_batch_requests"] = max(self.stats["largest_batch_requests"], len(jobs))
