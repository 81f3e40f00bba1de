"""What every writing job shares (synth, prepare): its units split over machines, its checks, and the
skeleton that writes the units of a registered `Output`."""

from .checks import check_fields, check_same_job, process_checks, resolve_specs
from .skeleton import JobRun, Output, check_out, check_resume, run_job
from .units import Split, run_units, start_units

__all__ = ["JobRun", "Output", "Split", "check_fields", "check_out", "check_resume", "check_same_job",
           "process_checks", "resolve_specs", "run_job", "run_units", "start_units"]
