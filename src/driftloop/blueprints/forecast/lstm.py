"""The seed's forecaster: a 2-layer LSTM (hidden 64) over a 60-day window of closes scaled to
[0, 1] by a min-max scaler fitted on the training windows only, predicting the next scaled
close. Torch behind the sklearn API; pickles as its parameters plus the network's weights.

``scaling="window"`` (not the seed's) divides each window and its target by the window's
last close first, so the network sees relative moves: the seed's global scaler cannot
forecast prices above the training range (a rising stock's test period)."""

from __future__ import annotations

import time

import numpy as np

from driftloop.blueprints.forecast.models import PriceForecaster, as_windows


def _network(hidden_size: int, num_layers: int, dropout: float):
    import torch
    from torch import nn

    class PriceLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(
                1, hidden_size, num_layers=num_layers, batch_first=True,
                dropout=dropout if num_layers > 1 else 0.0,
            )  # fmt: skip
            self.head = nn.Linear(hidden_size, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :]).squeeze(-1)

    return PriceLSTM()


class LSTMForecaster(PriceForecaster):
    kind = "lstm"

    def __init__(
        self,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.2,
        learning_rate: float = 1e-3,
        epochs: int = 10,
        batch_size: int = 64,
        max_seconds: float = 120.0,
        random_state: int = 0,
        n_threads: int = 1,
        scaling: str = "global",
    ):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_seconds = max_seconds
        self.random_state = random_state
        self.n_threads = n_threads
        self.scaling = scaling

    def _scale(self, values: np.ndarray) -> np.ndarray:
        return (values - self.price_min_) / self.price_span_

    def _relative(self, X: np.ndarray, y: np.ndarray | None = None):
        if self.scaling == "global":
            return X, y
        if self.scaling != "window":
            raise ValueError(f"scaling: 'global' or 'window', got {self.scaling!r}")
        last = X[:, -1:]
        return X / last, None if y is None else y / last[:, 0]

    def _fit(self, X, y):
        import torch

        torch.set_num_threads(self.n_threads)  # more threads were slower on a shared CPU
        torch.manual_seed(self.random_state)
        X, y = self._relative(X, y)
        # the scaler sees the training windows only: test prices must not leak into it
        self.price_min_ = float(min(X.min(), y.min()))
        self.price_span_ = float(max(X.max(), y.max()) - self.price_min_) or 1.0
        inputs = torch.tensor(self._scale(X), dtype=torch.float32).unsqueeze(-1)
        targets = torch.tensor(self._scale(y), dtype=torch.float32)
        network = _network(self.hidden_size, self.num_layers, self.dropout)
        optimiser = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
        loss_fn = torch.nn.MSELoss()
        generator = torch.Generator().manual_seed(self.random_state)
        started = time.monotonic()
        self.epochs_done_, self.losses_ = 0, []
        network.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(inputs), generator=generator)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                optimiser.zero_grad()
                loss = loss_fn(network(inputs[batch]), targets[batch])
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            self.epochs_done_ += 1
            self.losses_.append(total / len(inputs))
            if time.monotonic() - started > self.max_seconds:
                break
        network.eval()
        self.network_ = network

    def predict(self, X):
        import torch

        X = as_windows(X)
        relative, _ = self._relative(X)
        with torch.no_grad():
            inputs = torch.tensor(self._scale(relative), dtype=torch.float32).unsqueeze(-1)
            scaled = self.network_(inputs).numpy().astype(float)
        predicted = scaled * self.price_span_ + self.price_min_
        return predicted * X[:, -1] if self.scaling == "window" else predicted

    # the network's class is built in a function: pickle its weights, rebuild on load
    def __getstate__(self):
        state = dict(self.__dict__)
        network = state.pop("network_", None)
        if network is not None:
            state["network_state_"] = {k: v.clone() for k, v in network.state_dict().items()}
        return state

    def __setstate__(self, state):
        weights = state.pop("network_state_", None)
        self.__dict__.update(state)
        if weights is not None:
            network = _network(self.hidden_size, self.num_layers, self.dropout)
            network.load_state_dict(weights)
            network.eval()
            self.network_ = network
