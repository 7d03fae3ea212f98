"""Looking back at a model and its data: error breakdowns, label-noise review, reports."""
