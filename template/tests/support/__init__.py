"""What the tests share: throwaway databases and servers (Redis, SMTP, uvicorn), ports, accounts.

Test modules import from here; nothing here is collected as a test.
"""
