"""Shakespeare next-character prediction: the paper's character LSTM, one client per role."""
