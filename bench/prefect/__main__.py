from bench.prefect.lateness import main

main()
