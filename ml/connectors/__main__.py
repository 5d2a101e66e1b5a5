from ml.connectors.cli import main

raise SystemExit(main())
