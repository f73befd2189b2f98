import sys

from jaxconv.cli.main import main

sys.exit(main())
