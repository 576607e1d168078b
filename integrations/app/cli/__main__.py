from integrations.app.cli.main import main

main()
