"""What auditors read: model cards (Mitchell et al.) and bias audits, built from facts the pipeline holds."""
