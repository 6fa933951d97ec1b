"""The operators' dashboard on the bot's HTTP listener (``GET /admin``, with ``ADMIN_TOKEN``): who
may see it (``sessions``), what it shows (``figures``, read from the database so every process
agrees), how it is drawn (``charts``, ``page``) and its routes (``web``)."""
