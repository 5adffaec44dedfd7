from symphony.clients._cli import main

raise SystemExit(main())
