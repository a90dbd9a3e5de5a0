"""Next-day price forecasting of one series (see ``blueprint``): the seed's LSTM, honestly
gated against persistence."""
