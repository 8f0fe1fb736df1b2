"""Email-to-case: the inbound SMTP listener, the use case that files a message, the outbound replies."""
