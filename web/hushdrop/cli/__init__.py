"""The `hushdrop` command line: send, receive, serve."""
