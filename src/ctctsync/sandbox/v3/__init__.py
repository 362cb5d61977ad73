"""The sandbox's v3 face: ``/v3/...`` beside ``/v2/...``, over the same version-neutral account.

Modules: ``common`` (errors, cursors, limits, timestamp styles, the route guard), ``ids``
(the v3 UUID of every record and back), ``tokens`` (the OAuth2 token store standing in for
``authz.constantcontact.com``), ``oauth`` (its pages and endpoints), and one module of routes
per API area (``contacts``, ``campaigns``, ``reports``, ``account``, ``events``), assembled by
``app``. Shapes follow ``constant-contact-v3-api.md`` and the published contract
(``constant-contact-v3-swagger.yaml``), which a conformance test holds them to.
"""
