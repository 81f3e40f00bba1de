"""synth's outputs, as registered writers of the job skeleton (codo_aug.jobs): `{format: Output}`. A new
output format is one module with a RenderedOutput subclass and one line here."""

from .coco import CocoOutput
from .rendered import RenderedOutput
from .webdataset import WebDatasetOutput

#: {--format: the Output that writes it}.
FORMATS: dict[str, type[RenderedOutput]] = {"webdataset": WebDatasetOutput, "coco": CocoOutput}
