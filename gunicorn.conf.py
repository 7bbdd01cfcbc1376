"""gunicorn reads this file from the working directory (the Procfile's and systemd's).

The access log leaves query strings out: the provider's verification request carries its token
in the URL (`?token=`), and searches carry customers' numbers."""

access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
