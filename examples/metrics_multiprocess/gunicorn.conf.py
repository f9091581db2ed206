import os
import shutil

from prometheus_client import multiprocess

directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]  # e.g. /run/myapp/prometheus
shutil.rmtree(directory, ignore_errors=True)  # numbers of a previous run would add up
os.makedirs(directory)

worker_class = "uvicorn_worker.UvicornWorker"
workers = 4


def child_exit(server, worker):
    # A killed worker's in-progress requests stop counting (a worker that stops cleanly
    # does this itself).
    multiprocess.mark_process_dead(worker.pid)
