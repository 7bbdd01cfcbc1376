"""gunicorn reads this file from the working directory (the Procfile's and systemd's).

The access log leaves out query strings (the provider's verification request carries its token
in the URL, `?token=`; searches carry customers' numbers) and the user part (`%(u)s`: a request
sent with `Authorization: Basic base64(secret)` would write the webhook secret). Behind nginx
every request comes from loopback, so the line also names the client nginx saw
(`X-Forwarded-For`, one address; `-` without a proxy)."""

access_log_format = '%(h)s %({x-forwarded-for}i)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
