from w2sg.cli import main

raise SystemExit(main())
