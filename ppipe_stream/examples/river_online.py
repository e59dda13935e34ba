"""Example pipeline: an online river model learning from the delayed labels.

Classification: standard scaling into a multiclass logistic regression
(one-vs-rest); regression: scaling into a linear regression. Until the first
label arrives it answers with ``None``-free defaults (the most recent label
seen, or 0). A value that is missing or not a number (a corrupted row) is
left out of the row: river's models take a missing feature as it is.
"""

from __future__ import annotations

import os

from river import compose, linear_model, multiclass, optim, preprocessing

from ppipe_stream.sdk import Pipeline


def build_model(task: str):
    if task == "regression":
        return compose.Pipeline(preprocessing.StandardScaler(), linear_model.LinearRegression())
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optimizer=optim.SGD(0.1))),
    )


def main() -> None:
    task = os.environ.get("PPIPE_TASK", "classification")
    model = build_model(task)
    app = Pipeline()
    fallback: dict[str, object] = {"label": 0.0 if task == "regression" else ""}

    def numbers(features):
        return {k: v for k, v in features.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @app.predict
    def predict(features):
        answer = model.predict_one(numbers(features))
        return fallback["label"] if answer is None else answer

    @app.learn
    def learn(features, label):
        model.learn_one(numbers(features), label)
        if task != "regression":
            fallback["label"] = label

    app.run()


if __name__ == "__main__":
    main()
