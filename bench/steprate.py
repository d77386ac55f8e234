"""The timing both bench/torch_ref.py and bench/keras_ref.py use for `vgg16` (bench/run.sh --vgg), so that the
two frameworks are timed the same way. Standard library only: it runs under either interpreter."""
import statistics
import time


def rate_fields(step, batch, steps):
    """One untimed warm-up step, then `steps` timed ones; the RESULT line's rate fields: images per second of
    the median and of the fastest step, and images per CPU second of the process (all its threads) over them."""
    step()
    times, cpu0 = [], time.process_time()
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    return (f"images_s={batch / statistics.median(times):.2f} images_s_max={batch / min(times):.2f} "
            f"images_cpu_s={batch * steps / cpu:.2f}")
