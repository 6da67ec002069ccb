"""seqcli: sequence classification and regression experiments with stacked Keras LSTMs."""

__version__ = "0.3.0"
