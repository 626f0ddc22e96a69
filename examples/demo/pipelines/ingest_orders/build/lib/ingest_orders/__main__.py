from ingest_orders.main import main

raise SystemExit(main())
