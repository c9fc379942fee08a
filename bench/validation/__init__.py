"""Is a set store valid? Evidence (control models' predictions, probes trained on the sets), checks, mutants."""
