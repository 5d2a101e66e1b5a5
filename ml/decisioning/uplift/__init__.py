"""Uplift targeting: who is emailed because the email changes what they do.

- `learners`: scikit-uplift meta-learners (T-, S-learner, class transformation) over LightGBM,
  and the uplift@k, Qini AUC and AUUC metrics;
- `benchmark`: learners compared on seeded stratified splits, the Hillstrom benchmark, and
  its MLflow run;
- `decision`: email those whose expected incremental value exceeds the cost, within a budget.
"""
