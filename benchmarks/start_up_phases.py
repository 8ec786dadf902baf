"""When each fixed cost of a `train.py` run ends: TensorFlow's import, the vocabulary pass, the check that the
corpus gives pairs, the step runner, the first progress line (tracing and compiling the step included), each
epoch's end, and the end of the run; wall and CPU seconds since the start.

    python benchmarks/start_up_phases.py --model-dir /tmp/phases              # the default corpus, as a first run
    python benchmarks/start_up_phases.py --corpus ../shared/corpora/gcide.txt.gz --epochs 1 --model-dir /tmp/g

Any train.py flag works; the model directory should be new, so that the run is a first run.
"""

import functools
import pathlib
import resource
import sys
import time

START = time.perf_counter()
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def stamp(event: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"[{time.perf_counter() - START:7.2f} s, CPU {usage.ru_utime + usage.ru_stime:7.2f} s] {event}", flush=True)


def timed(module, name: str) -> None:
    """Wraps `module.name` so that its start and end are stamped."""
    function = getattr(module, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        stamp(f"{name} starts")
        result = function(*args, **kwargs)
        stamp(f"{name} ends")
        return result

    setattr(module, name, wrapper)


def main() -> int:
    import train as train_script
    from cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    stamp("TensorFlow imported")
    from training import loop, preflight

    timed(preflight, "build_vocabulary")
    timed(preflight, "check_training_pairs")
    timed(loop, "make_step_runner")
    epoch_end, scalars = loop.TrainingLog.epoch_end, loop.TrainingLog.scalars
    first_line = []

    def stamped_epoch_end(self, epoch, *args, **kwargs):
        stamp(f"epoch {epoch} trained")
        return epoch_end(self, epoch, *args, **kwargs)

    def stamped_scalars(self, step, **values):
        if not first_line:
            first_line.append(step)
            stamp(f"first progress line (step {step})")
        return scalars(self, step, **values)

    loop.TrainingLog.epoch_end, loop.TrainingLog.scalars = stamped_epoch_end, stamped_scalars
    sys.argv = ["train.py", *sys.argv[1:]]
    code = train_script.main()
    stamp("done")
    return code


if __name__ == "__main__":
    sys.exit(main())
