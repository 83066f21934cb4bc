"""Attention LSTM translation library: model, search, model directories, Translator.

This package never imports the training or service drivers, nor any web library.
"""

__version__ = "0.1.0"
