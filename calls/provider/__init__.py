"""The only code that speaks HTTP to Mobtexting. One Gateway protocol (base.py), two
implementations (mobtexting.py, sandbox.py); `configured.get_gateway()` picks one.

Nothing is imported here: the models use base.py's result types while the sandbox's outcome task
uses the models, so importing this package must not pull the sandbox in.
"""
