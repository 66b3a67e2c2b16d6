"""Hazardous materials: the only package that imports ``cryptography.hazmat``.

No I/O, no storage, no policy here. Callers above use the recipe-level functions of these modules.
"""
