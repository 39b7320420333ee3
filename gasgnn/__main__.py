import sys

from gasgnn.cli import main

sys.exit(main())
