"""Uplift targeting: who is emailed because the email changes what they do.

- `learners`: scikit-uplift meta-learners (T-, S-learner, class transformation) over LightGBM,
  and the uplift@k, Qini AUC and AUUC metrics;
- `benchmark`: learners compared on seeded stratified splits, the Hillstrom benchmark, and
  its MLflow run;
- `decision`: email those whose expected incremental value exceeds the cost, within a budget;
- `examples`: the loop's randomised training rows (the shop's random campaign shares, the
  holdout and the random control) and the balance check that tells random sends from targeted;
- `daily`: the daily fit, judged against the propensity ranking on held-out randomised rows,
  and the gate that lets it decide only when it is shown better.
"""
