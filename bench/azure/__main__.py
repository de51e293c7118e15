from bench.azure.burst import main

main()
