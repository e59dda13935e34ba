"""Example pipeline: a scikit-learn model retrained in batches from the labels it
has collected, on the proctor's ``retrain`` command and every
``PPIPE_RETRAIN_EVERY`` labels (default 200). Until its first fit it answers the
most frequent label seen so far."""

from __future__ import annotations

import collections
import os
from typing import Any

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ppipe_stream.sdk import Pipeline


def main() -> None:
    task = os.environ.get("PPIPE_TASK", "classification")
    every = int(os.environ.get("PPIPE_RETRAIN_EVERY", "200"))
    keep = int(os.environ.get("PPIPE_KEEP_LABELS", "20000"))
    rows: collections.deque = collections.deque(maxlen=keep)
    counts: collections.Counter = collections.Counter()
    state: dict[str, Any] = {"model": None, "columns": None, "since": 0, "fits": 0}
    app = Pipeline()

    def vector(features: dict) -> list[float]:
        columns = state["columns"] or sorted(k for k, v in features.items() if isinstance(v, (int, float)))
        state["columns"] = columns
        return [float(features.get(c) or 0.0) for c in columns]

    def fit() -> str:
        labels = [y for _, y in rows]
        if len(rows) < 10 or (task != "regression" and len(set(labels)) < 2):
            return f"not enough labels yet ({len(rows)})"
        estimator = Ridge() if task == "regression" else LogisticRegression(max_iter=500)
        model = make_pipeline(StandardScaler(), estimator)
        model.fit([vector(x) for x, _ in rows], labels)
        state.update(model=model, since=0, fits=int(state["fits"]) + 1)
        return f"fitted on {len(rows)} rows (fit #{state['fits']})"

    @app.predict
    def predict(features):
        model = state["model"]
        if model is None:
            return counts.most_common(1)[0][0] if counts else (0.0 if task == "regression" else "")
        answer = model.predict([vector(features)])[0]
        return answer.item() if hasattr(answer, "item") else answer

    @app.learn
    def learn(features, label):
        rows.append((features, label))
        counts[label] += 1
        state["since"] = int(state["since"]) + 1
        if int(state["since"]) >= every:
            fit()

    @app.command("retrain")
    def retrain(command):
        return fit()

    app.run()


if __name__ == "__main__":
    main()
