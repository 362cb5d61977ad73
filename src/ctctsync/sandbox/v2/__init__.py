"""The Constant Contact v2 API face of the sandbox: routes, envelopes, paging, errors, OAuth."""
