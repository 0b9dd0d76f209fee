"""`pycvnn playground`: a local web app that trains small networks live on pycvnn's C++ core.

data (the data sets and input features), config (the settings and their checks), session
(one training session and the store of them) and app (the HTTP API and the page) need the
`playground` extra only for app.
"""
