"""Network bodies copied verbatim into every exported ``model.py``.

Each file imports only torch and builds the same modules, under the same attribute
names, as ``search_spaces/<space>_torch.py``, so a state_dict of one loads into the
other (tests/nas/test_export.py holds them equal). They are kept apart from the
space's builders because an export must run where hwnas is not installed.
"""
