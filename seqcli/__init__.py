"""seqcli: sequence classification experiments with stacked Keras LSTMs."""

__version__ = "0.1.0"
