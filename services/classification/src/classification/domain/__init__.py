"""Pure classification logic: the steps of the pipeline and the taxonomy. No I/O."""
