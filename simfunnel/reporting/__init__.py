"""Reporting: plots and tables from DataFrames, headline numbers, notebook reports."""
