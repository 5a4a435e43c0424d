from dlgrade.graders.cli import main

main()
